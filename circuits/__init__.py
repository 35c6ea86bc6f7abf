"""zkmb.circuits: the statements of SPEC.md.

``co`` (channel opening, §3), ``pad`` (keystream pads, §4), ``commit`` (commitment layouts),
``witness`` (client side: assignments from a captured session), ``public`` (middlebox side: public
inputs from wire bytes; imports nothing secret).  Submodules are imported explicitly; this package
stays light so the middlebox can import ``public`` alone.
"""

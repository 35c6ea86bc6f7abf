"""zkmb.middlebox: the verifier service. Not yet implemented."""

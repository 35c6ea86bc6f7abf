"""zkmb.circuits: the statements of SPEC.md (channel opening, pad, query). Not yet implemented."""

"""zkmb.client_stub: the stub resolver service. Not yet implemented."""

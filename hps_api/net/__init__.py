"""Who is calling: a caller's address mapped to its MAC (the neighbour tables, read through
netlink), with the on-link rules that keep a routed or forged address from speaking for a host."""

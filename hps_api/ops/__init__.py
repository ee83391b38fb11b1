"""The operations on hosts and clusters that every door shares (legacy commands, /api/v1, the
pages, the CLIs): one function per operator act, with its checks and its side effects as
explicit steps. A door parses its input, names the caller and renders the answer; it does not
compose store writes itself.

Layering: `ops` sits above `boot` (decisions, allocation, catalog) and `services` (dnsmasq,
rsyslog, nginx files) and below the doors (`commands`, `web`, `cli`); nothing below imports it.
`tests/test_layers.py` holds that.
"""

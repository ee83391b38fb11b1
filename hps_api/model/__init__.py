"""The cluster's facts every layer shares: the network model, the state table and its groups, the
host-type catalog, the OS registry, who owns which key, the cluster keys' rules, and where the
shipped data files are found. Pure rules over plain values; `boot/`, `services/`, `ops/` and the
doors all read them from here, and nothing here imports those layers."""

"""Power control through a host's BMC: the drivers (Redfish, IPMI, Wake-on-LAN) behind one
interface, the per-host BMC settings, and the files that record actions and the last known
power state. No operation lives here: `hps_api.ops.power` retries, verifies and journals."""

"""The legacy `cmd=` commands: one small function per command, each in its own module.

`COMMANDS` maps the name old clients send to the function; the endpoint does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hps_api.commands import (
    audit,
    boot,
    host_state,
    kickstart,
    menu,
    node,
    overlay,
    storage,
    variables,
)
from hps_api.commands.base import CommandContext, Reply

Command = Callable[[CommandContext], Reply]

COMMANDS: dict[str, Command] = {
    "determine_state": host_state.determine_state,
    "set_status": host_state.set_status,
    "host_variable": variables.host_variable,
    "cluster_variable": variables.cluster_variable,
    "os_variable": variables.os_variable,
    "host_get_config": variables.host_get_config,
    "log_message": host_state.log_message,
    "init": boot.init,
    "config_host": boot.config_host,
    "process_menu_item": menu.process_menu_item,
    "apkovl": overlay.apkovl,
    "get_remote_functions": node.remote_functions,
    "node_get_functions": node.remote_functions,
    "node_get_bootstrap_functions": node.remote_functions,
    "syslog_check": node.syslog_check,
    "selftest_report": node.selftest_report,
    "host_allocate_networks": node.host_allocate_networks,
    "kickstart": kickstart.kickstart,
    "host_audit": audit.host_audit,
    "storage_work": storage.storage_work,
    "storage_report": storage.storage_report,
}

#: script-like answers: always their native text (iPXE script, shell library, kickstart, archive)
#: whatever the client, unless the query says `format=json` (docs/api.md §3)
SCRIPT_COMMANDS = frozenset({"init", "process_menu_item", "kickstart", "apkovl",
                             "get_remote_functions", "node_get_functions",
                             "node_get_bootstrap_functions"})

#: commands that never change anything (host_variable and cluster_variable only without
#: `value=` or `action=`): the only ones a browser may run (hps_api.web.legacy)
READ_COMMANDS = frozenset({"determine_state", "os_variable", "host_get_config",
                           "get_remote_functions", "node_get_functions",
                           "node_get_bootstrap_functions", "syslog_check"})
GETTERS = frozenset({"host_variable", "cluster_variable"})


def writes(name: str, params: Mapping[str, str]) -> bool:
    """Return True when command `name` with these parameters may change state or logs."""
    if name in READ_COMMANDS:
        return False
    if name in GETTERS:
        return "value" in params or "action" in params
    return True

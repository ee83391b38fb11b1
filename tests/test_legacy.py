"""The legacy endpoint as old clients use it: exact bodies, statuses, decoding, identity."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hps_api.store import FileStore, RecordId

MAC = "525400aabb01"
OTHER = "525400aabb02"
IPXE = {"User-Agent": "iPXE/1.21.1+"}
CURL = {"User-Agent": "curl/8.5.0"}
BROWSER = {"User-Agent": "Mozilla/5.0 Chrome/120", "Accept": "text/html"}
JSON = {"User-Agent": "python-requests/2.31", "Accept": "application/json"}
SCRIPT: dict[str, str] = {}
ARP = ("IP address       HW type     Flags       HW address            Mask     Device\n"
       "10.99.0.21       0x1         0x2         52:54:00:aa:bb:01     *        br0\n")
URL = "/cgi-bin/boot_manager.sh"


@pytest.fixture(autouse=True)
def lan(tmp_path: Path, store: FileStore, host: RecordId) -> None:
    """10.99.0.21 is 52:54:00:aa:bb:01 in the neighbour table; a second host exists."""
    (tmp_path / "arp").write_text(ARP)
    store.update(host, {"STATE": "INSTALLING", "TYPE": "SCH", "HOSTNAME": "sch-001"}, "t")
    store.update(RecordId.of_host("default", OTHER), {"STATE": "INSTALLED"}, "t", create=True)
    store.update(RecordId.of_cluster("default"), {"DNS_DOMAIN": "lab.local",
                                                  "ROOT_PASSWORD": "hunter2"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {"NAME": "rocky", "KERNEL": "vmlinuz"}, "t",
                 create=True)


# --- golden bodies: the exact strings old clients parse -------------------------------------

GOLDEN = [
    ("cmd=determine_state", "INSTALLING\n"),
    ("cmd=set_status&status=INSTALLED", f"{MAC} set to INSTALLED\n"),
    ("cmd=host_variable&name=hostname", "sch-001\n"),
    ("cmd=host_variable&name=NOTE&value=hello world", f"{MAC} set NOTE to hello world\n"),
    ("cmd=host_variable&name=NOTE&value=", f"{MAC} set NOTE to \n"),
    ("cmd=cluster_variable&name=dns_domain", "lab.local\n"),
    ("cmd=os_variable&os_id=x86_64:rocky:10&name=KERNEL", "vmlinuz\n"),
    ("cmd=log_message&message=hello&function=n_test", ""),
]


@pytest.mark.parametrize(("query", "body"), GOLDEN)
def test_text_bodies_are_exactly_what_old_clients_parse(web, query: str, body: str) -> None:
    assert web.get(f"{URL}?{query}", headers=SCRIPT).text == body


def test_host_variable_unset_answers_and_removes(web, store: FileStore, host) -> None:
    web.get(f"{URL}?cmd=host_variable&name=NOTE&value=x")
    assert web.get(f"{URL}?cmd=host_variable&name=note&action=unset").text == \
        f"{MAC} unset NOTE\n"
    assert "NOTE" not in store.items(host)


def test_an_admin_sets_a_cluster_key(web) -> None:
    res = web.get(f"{URL}?cmd=cluster_variable&name=NTP&value=10.99.0.1",
                  extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    assert res.text == "cluster set NTP to 10.99.0.1\n"


ERRORS = [
    ("cmd=frobnicate", 404, "Unknown or unsupported command: frobnicate"),
    ("", 400, "Param 'cmd' is required"),
    ("cmd=host_variable", 400, "Param 'name' is required"),
    ("cmd=host_variable&name=NOPE", 404, "Key 'NOPE' not found"),
    ("cmd=set_status", 400, "Param 'status' is required"),
    ("cmd=set_status&status=BOGUS", 400, "unknown state 'BOGUS'"),
    ("cmd=set_status&status=UNCONFIGURED", 409, "illegal state transition"),
    ("cmd=cluster_variable&name=ROOT_PASSWORD", 403, "sensitive"),
    ("cmd=cluster_variable&name=NTP&value=x", 403, "admin only"),
    ("cmd=host_variable&name=IP&value=10.99.0.99", 403, "managed by address allocation"),
    ("cmd=host_variable&name=bad-key", 400, "invalid key"),
    ("cmd=host_variable&name=NOTE&value=a%0Ab", 400, "control character"),
    ("cmd=os_variable&os_id=../../etc&name=X", 400, "invalid OS id"),
    ("cmd=os_variable&os_id=x86_64:none:1&name=X", 404, "not found"),
    ("cmd=log_message", 400, "Param 'message' is required"),
    ("cmd=determine_state&mac=52:54:00:aa:bb:02", 403, "does not match"),
    ("cmd=determine_state&mac=../../x", 400, "invalid MAC"),
]


@pytest.mark.parametrize(("query", "status", "message"), ERRORS)
def test_errors_have_real_status_codes_for_scripts(web, query: str, status: int,
                                                   message: str) -> None:
    res = web.get(f"{URL}?{query}", status=status)
    assert message in res.text
    assert res.text.endswith("\n") and res.text.count("\n") == 1


@pytest.mark.parametrize(("query", "status", "message"), ERRORS)
def test_errors_are_json_objects_for_json_clients(web, query: str, status: int,
                                                  message: str) -> None:
    res = web.get(f"{URL}?{query}", headers=JSON, status=status)
    assert res.json["ok"] is False
    assert res.json["error"]["code"] == status
    assert message in res.json["error"]["message"]


@pytest.mark.parametrize(("query", "status", "message"), ERRORS)
def test_errors_are_json_for_curl_with_its_default_headers(web, query: str, status: int,
                                                          message: str) -> None:
    res = web.get(f"{URL}?{query}", headers={**CURL, "Accept": "*/*"}, status=status)
    assert res.content_type == "application/json"
    assert res.json == {"ok": False, "error": {"code": status, "message": res.json["error"][
        "message"]}}
    assert message in res.json["error"]["message"]


@pytest.mark.parametrize(("query", "status", "message"), ERRORS)
def test_errors_are_retry_scripts_with_status_200_for_ipxe(web, query: str, status: int,
                                                           message: str) -> None:
    res = web.get(f"{URL}?{query}", headers=IPXE, status=200)
    assert res.text.startswith("#!ipxe\n")
    assert message.split("'")[0] in res.text
    assert "sleep 10" in res.text
    assert "cmd=init" in res.text
    assert "|| goto failed" in res.text and "reboot" in res.text


@pytest.mark.parametrize(("query", "status", "message"), ERRORS[:4])
def test_errors_are_html_pages_for_browsers(web, query: str, status: int, message: str) -> None:
    res = web.get(f"{URL}?{query}", headers=BROWSER, status=status)
    assert res.content_type == "text/html"
    assert "<!doctype html>" in res.text
    assert message.replace("'", "&#39;").split("&#39;")[0] in res.text


# --- every command x client type -----------------------------------------------------------

COMMANDS = ["cmd=determine_state", "cmd=host_variable&name=HOSTNAME",
            "cmd=cluster_variable&name=DNS_DOMAIN",
            "cmd=os_variable&os_id=x86_64:rocky:10&name=NAME",
            "cmd=host_get_config", "cmd=log_message&message=hi",
            "cmd=set_status&status=INSTALLED"]


@pytest.mark.parametrize("query", COMMANDS)
@pytest.mark.parametrize(("headers", "content_type"), [
    (IPXE, "text/plain"), (CURL, "text/plain"), (BROWSER, "text/html"),
    (JSON, "application/json"), (SCRIPT, "text/plain"),
])
def test_every_command_answers_every_client_type(web, query, headers, content_type) -> None:
    if headers is BROWSER and query.startswith(("cmd=log_message", "cmd=set_status")):
        return  # writes: refused to browsers (test_a_browser_may_read_but_never_write)
    res = web.get(f"{URL}?{query}", headers=headers)
    assert res.status_int == 200
    assert res.content_type == content_type
    if content_type == "application/json":
        assert res.json["ok"] is True
    if headers is BROWSER:
        assert f'href="/hosts/{MAC}"' in res.text
    if headers is IPXE and "host_get_config" not in query and "log_message" not in query:
        assert res.text.startswith("#!ipxe\nset hps_reply ")


BROWSER_MARKS = [{"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120"},
                 {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Mode": "no-cors"},
                 {"Sec-Fetch-Dest": "image"}, {"Origin": "http://evil.example"},
                 {"Referer": "http://evil.example/page.html"}]


@pytest.mark.parametrize("marks", BROWSER_MARKS)
@pytest.mark.parametrize("query", [
    "cmd=host_variable&name=RESCUE_NOTE&value=yes", "cmd=host_variable&name=NOTE&action=unset",
    "cmd=set_status&status=INSTALLED", "cmd=log_message&message=x",
    "cmd=cluster_variable&name=DHCP_IP&value=6.6.6.6"])
def test_a_browser_may_read_but_never_write(web, store, host, marks, query) -> None:
    """A page on any site, open in a browser on the IPS, makes it send these (F2)."""
    store.update(host, {"NOTE": "kept"}, "t")
    before = (store.items(host), store.items(RecordId.of_cluster("default")))
    loopback = {"REMOTE_ADDR": "127.0.0.1"}
    res = web.get(f"{URL}?{query}&mac={MAC}", headers=marks, extra_environ=loopback,
                  status=403)
    assert "browser" in res.text
    assert (store.items(host), store.items(RecordId.of_cluster("default"))) == before
    assert "kept" in web.get(f"{URL}?cmd=host_variable&name=NOTE&mac={MAC}", headers=marks,
                             extra_environ=loopback).text


def test_the_aliases_serve_the_same_commands(web) -> None:
    for path in ("/boot_manager", "/api/cgi", URL):
        assert web.get(f"{path}?cmd=determine_state").text == "INSTALLING\n"


# --- parameter decoding --------------------------------------------------------------------

@pytest.mark.parametrize(("query", "value"), [
    ("?&cmd=host_variable&&name=NOTE&value=a", "a"),
    ("?cmd=host_variable&name=NOTE&value=hello+world", "hello world"),
    ("?cmd=host_variable&name=NOTE&value=100%25%20sure", "100% sure"),
    ("?cmd=host_variable&name=NOTE&value=%2541", "%41"),
    ("?cmd=host_variable&name=NOTE&value=a=b=c", "a=b=c"),
    ("?cmd=host_variable&name=NOTE&value=YQ==", "YQ=="),
    ("?cmd=host_variable&name=NOTE&value=first&value=last", "last"),
    ("?cmd=host_variable&name=NOTE&value=%C3%BCnic%C3%B8de", "ünicøde"),
    ("?cmd=host_variable&name=NOTE&value=%2B", "+"),
    ("?cmd=host_variable&name=NOTE&value=x&unknown=ignored", "x"),
])
def test_parameters_decode_exactly_once(web, store: FileStore, host, query: str,
                                        value: str) -> None:
    web.get(URL + query)
    assert store.items(host)["NOTE"] == value


def test_a_post_form_body_works_and_the_query_string_wins(web, store: FileStore, host) -> None:
    web.post(f"{URL}?cmd=host_variable&name=NOTE", {"value": "from body", "name": "IGNORED"})
    assert store.items(host)["NOTE"] == "from body"
    assert "IGNORED" not in store.items(host)


def test_everything_in_a_post_query_string_works_like_curl_sends_it(web, store, host) -> None:
    web.post(f"{URL}?cmd=host_variable&name=NOTE&value=q", "", headers=CURL)
    assert store.items(host)["NOTE"] == "q"


# --- bad input changes nothing -------------------------------------------------------------

@pytest.mark.parametrize(("query", "status"), [
    ("cmd=host_variable&name=NOTE&value=" + "x" * 9000, 400),
    ("cmd=host_variable&name=NOTE&value=%FF%FE", 400),
    ("cmd=host_variable&name=NOTE&value=%00", 400),
    ("cmd=host_variable&name=NOTE&value=%1B[31m", 400),
    ("cmd=host_variable&name=../../etc/passwd&value=x", 400),
    ("cmd=host_variable&name=NOTE&value=x&mac=%2F..%2F", 400),
    ("cmd=host_variable&name=NOTE&value=x&mac=", 200),
    ("cmd=set_status&status=INSTALLED%0AROOT=1", 400),
])
def test_bad_parameters_are_refused_and_change_nothing(web, config_dir, snapshot, query: str,
                                                       status: int) -> None:
    before = snapshot(config_dir)
    web.get(f"{URL}?{query}", status=status)
    if status != 200:
        assert snapshot(config_dir) == before


def test_an_oversized_body_is_refused_with_413(web, config_dir, snapshot) -> None:
    before = snapshot(config_dir)
    web.post(f"{URL}?cmd=host_variable&name=NOTE", {"value": "x" * (1024 * 1024 + 10)},
             status=413)
    assert snapshot(config_dir) == before


def test_a_value_over_64_kib_is_refused(web, config_dir, snapshot) -> None:
    before = snapshot(config_dir)
    web.post(f"{URL}?cmd=host_variable&name=NOTE", {"value": "x" * (64 * 1024 + 1)}, status=400)
    assert snapshot(config_dir) == before


# --- identity and authority ----------------------------------------------------------------

def test_an_unknown_host_is_404_and_not_registered(web, config_dir, snapshot) -> None:
    before = snapshot(config_dir)
    res = web.get(f"{URL}?cmd=determine_state&mac=52:54:00:00:00:99",
                  extra_environ={"REMOTE_ADDR": "192.0.2.9"}, status=404)
    assert res.text == "Host 525400000099 not found\n"
    assert snapshot(config_dir) == before


def test_a_caller_nothing_identifies_must_say_mac(web) -> None:
    res = web.get(f"{URL}?cmd=determine_state", extra_environ={"REMOTE_ADDR": "192.0.2.9"},
                  status=400)
    assert res.text == "Param 'mac' is required\n"


def test_mac_is_accepted_where_no_verified_source_knows_the_caller(web) -> None:
    res = web.get(f"{URL}?cmd=determine_state&mac=52-54-00-AA-BB-02",
                  extra_environ={"REMOTE_ADDR": "192.0.2.9"})
    assert res.text == "INSTALLED\n"


def test_spoofing_is_refused_and_logged(web, settings) -> None:
    web.get(f"{URL}?cmd=host_variable&name=NOTE&value=evil&mac={OTHER}", status=403)
    log = (settings.log_dir / "hps-api.log").read_text()
    assert "-> 403" in log and "does not match" in log


def test_a_host_cannot_touch_another_hosts_record(web, store: FileStore) -> None:
    web.get(f"{URL}?cmd=host_variable&name=NOTE&value=x&mac={OTHER}", status=403)
    assert "NOTE" not in store.items(RecordId.of_host("default", OTHER))


def test_an_admin_token_lets_a_lan_caller_write_another_host(web, store: FileStore) -> None:
    web.get(f"{URL}?cmd=host_variable&name=IP&value=10.99.0.50&mac={OTHER}",
            headers={"Authorization": "Bearer admin-token-1"})
    assert store.items(RecordId.of_host("default", OTHER))["IP"] == "10.99.0.50"


def test_a_wrong_admin_token_is_not_admin(web) -> None:
    web.get(f"{URL}?cmd=cluster_variable&name=NTP&value=x",
            headers={"Authorization": "Bearer wrong"}, status=403)


@pytest.mark.parametrize("headers", [SCRIPT, JSON, BROWSER, IPXE])
def test_sensitive_cluster_keys_never_reach_non_admins(web, headers) -> None:
    res = web.get(f"{URL}?cmd=cluster_variable&name=root_password", headers=headers,
                  status="*")
    assert "hunter2" not in res.text


def test_sensitive_host_keys_are_left_out_of_host_get_config(web, store, host) -> None:
    store.update(host, {"ISCSI_CHAP_SECRET": "s3", "API_TOKEN": "t0"}, "t")
    for headers in (SCRIPT, JSON, BROWSER, IPXE):
        body = web.get(f"{URL}?cmd=host_get_config", headers=headers).text
        assert "s3" not in body and "t0" not in body and "STATE" in body
    admin = web.get(f"{URL}?cmd=host_get_config&mac={MAC}",
                    extra_environ={"REMOTE_ADDR": "127.0.0.1"}).text
    assert 'ISCSI_CHAP_SECRET="s3"' in admin


def test_sensitive_values_are_never_logged(web, store, host, settings) -> None:
    web.get(f"{URL}?cmd=cluster_variable&name=ROOT_PASSWORD&value=newpass",
            extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    web.get(f"{URL}?cmd=cluster_variable&name=ROOT_PASSWORD", status=403)
    assert "newpass" not in (settings.log_dir / "hps-api.log").read_text()
    assert "hunter2" not in (settings.log_dir / "hps-api.log").read_text()


def test_a_node_reports_installed_once_and_cannot_go_back(web, store, host) -> None:
    web.get(f"{URL}?cmd=set_status&status=INSTALLED")
    web.get(f"{URL}?cmd=set_status&status=INSTALLING", status=409)
    web.get(f"{URL}?cmd=host_variable&name=STATE&value=REINSTALL", status=409)
    assert store.items(host)["STATE"] == "INSTALLED"


def test_an_old_kickstart_reporting_through_host_variable_still_works(web, store, host) -> None:
    assert web.get(f"{URL}?cmd=host_variable&name=state&value=installed").text == \
        f"{MAC} set STATE to INSTALLED\n"
    assert store.items(host)["STATE"] == "INSTALLED"


# --- host_get_config is safe to eval -------------------------------------------------------

HOSTILE = ["$(touch PWNED)", "`touch PWNED`", 'say "hi"', "it's", "back\\slash\\",
           "$HOME ${PATH}", "a=b", "  spaced  ", "ünïcødé", "\\$(touch PWNED)", ""]


@pytest.mark.parametrize("shell", ["sh", "bash", "dash"])
def test_host_get_config_evaluated_by_a_real_shell_yields_the_exact_values(
    web, store, host, tmp_path: Path, shell: str
) -> None:
    if subprocess.run(["sh", "-c", f"command -v {shell}"], capture_output=True).returncode:
        pytest.skip(f"{shell} not installed")
    store.update(host, {f"V{i}": v for i, v in enumerate(HOSTILE)}, "t")
    config = web.get(f"{URL}?cmd=host_get_config").text
    script = 'eval "$(cat config)"\n' + "".join(
        f'printf "%s\\0" "$V{i}"\n' for i in range(len(HOSTILE)))
    (tmp_path / "config").write_text(config)
    result = subprocess.run([shell, "-c", script], cwd=tmp_path, capture_output=True,
                            timeout=10, check=True)
    assert result.stdout.decode().split("\0")[:-1] == HOSTILE
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("shell", ["bash", "dash"])
def test_an_old_node_reads_back_the_lower_case_key_it_wrote(web, store, host, tmp_path: Path,
                                                            shell: str) -> None:
    web.get(f"{URL}?cmd=host_variable&name=virtualization_status&value=active", headers=CURL)
    web.get(f"{URL}?cmd=host_variable&name=storage0_interface&value=eth1.31", headers=CURL)
    assert store.items(host)["VIRTUALIZATION_STATUS"] == "active"
    (tmp_path / "config").write_text(web.get(f"{URL}?cmd=host_get_config", headers=CURL).text)
    result = subprocess.run(
        [shell, "-c", 'eval "$(cat config)"; echo "$virtualization_status $VIRTUALIZATION_STATUS '
                      '$storage0_interface $HOSTNAME ${hostname:-none}"'],
        cwd=tmp_path, capture_output=True, text=True, timeout=10, check=True)
    assert result.stdout == "active active eth1.31 sch-001 none\n"


def test_the_latest_spelling_wins_and_unset_forgets_it(web, store, host) -> None:
    web.get(f"{URL}?cmd=host_variable&name=Rack_Slot&value=4")
    assert "\nRack_Slot=\"4\"\n" in web.get(f"{URL}?cmd=host_get_config").text
    web.get(f"{URL}?cmd=host_variable&name=RACK_SLOT&value=5")
    config = web.get(f"{URL}?cmd=host_get_config").text
    assert 'RACK_SLOT="5"' in config and "Rack_Slot" not in config
    web.get(f"{URL}?cmd=host_variable&name=rack_slot&value=6")
    web.get(f"{URL}?cmd=host_variable&name=rack_slot&action=unset")
    assert "RACK_SLOT" not in store.items(host) and "KEY_SPELLINGS" not in store.items(host)
    assert "rack_slot" not in web.get(f"{URL}?cmd=host_get_config").text


def test_a_node_cannot_write_the_spellings_itself(web, store, host) -> None:
    web.get(f"{URL}?cmd=host_variable&name=KEY_SPELLINGS&value=path", status=403)
    assert "KEY_SPELLINGS" not in store.items(host)


def test_log_message_lines_carry_host_session_client_and_function(web, settings) -> None:
    web.get(f"{URL}?cmd=log_message&message=disk+ok%0Aforged+line&function=n_check&session=ab12cd",
            headers={"User-Agent": "hps-node/0.1", "Accept": "text/plain"})
    lines = (settings.log_dir / "hps-api.log").read_text().splitlines()
    line = next(ln for ln in lines if "n_check" in ln)
    assert line.split()[1:5] == ["INFO", MAC, "ab12cd", "cli"]
    assert line.endswith("[n_check] disk ok\\nforged line")
    assert not any(ln.startswith("forged") for ln in lines)


def test_json_answers_wrap_data(web) -> None:
    res = web.get(f"{URL}?cmd=determine_state", headers=JSON)
    assert json.loads(res.text) == {"ok": True, "data": {"mac": MAC, "state": "INSTALLING"}}


def test_loopback_forwarded_by_an_untrusted_proxy_is_not_admin(web) -> None:
    web.get(f"{URL}?cmd=cluster_variable&name=NTP&value=x",
            extra_environ={"REMOTE_ADDR": "127.0.0.1"},
            headers={"X-Forwarded-For": "10.99.0.99"}, status=403)


def test_a_cross_site_page_in_the_operators_browser_is_not_admin(web) -> None:
    web.get(f"{URL}?cmd=cluster_variable&name=NTP&value=x",
            extra_environ={"REMOTE_ADDR": "127.0.0.1"},
            headers={"Origin": "http://evil.example"}, status=403)


@pytest.mark.parametrize(("query", "line"), [
    ("cmd=log_message&message=disk+ok&function=n_check", "[n_check] disk ok"),
    ("cmd=set_status&status=INSTALLED", "state INSTALLING -> INSTALLED"),
    ("cmd=determine_state", "cmd=determine_state ok"),
    ("cmd=host_variable&name=hostname", "cmd=host_variable ok"),
])
def test_each_request_writes_one_event_line_its_commands_own_or_a_generic_one(
    web, settings, query: str, line: str
) -> None:
    web.get(f"{URL}?{query}", headers=SCRIPT)
    lines = (settings.log_dir / "hps-api.log").read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith(line)

"""How hps-api is started: the gunicorn server (`hps-api serve`) and the CGI adapter the old
`/cgi-bin/boot_manager.sh` URL can point at. Both build the one Flask app of `hps_api.web`."""

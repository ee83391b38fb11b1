"""The bash-era importer: reads the old system's config tree (`hps-config/`, its shell-quoted
`KEY=value` files) and writes it into a store (`hps-api import-legacy`)."""

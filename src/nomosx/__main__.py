from nomosx.cli.main import run

run()

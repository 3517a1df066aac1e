from mlops.cli import run

run()

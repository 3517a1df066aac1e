.PHONY: demo test setup bench

demo:   ## run the main job end to end on local defaults
	bash hack/demo.sh

test:   ## set up the machine and run the test suite
	bash hack/test.sh

setup:  ## install packages, start the Docker Engine, build the base image
	bash hack/setup.sh

bench:  ## run benchmarks/ and rewrite the table in benchmarks/README.md
	bash hack/bench.sh

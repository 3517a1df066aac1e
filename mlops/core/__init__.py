"""Pure logic: no files, no network, no subprocess, no third-party SDK. Given data, it
decides; the services gather the data and carry out the decision."""

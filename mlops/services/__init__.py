"""Services that commands share: environment directories, compiling, registry access,
promotion steps, canary operations. They orchestrate adapters and pure logic; commands
parse options, call them and report. A service never imports a command module."""

"""The command line, in one package: Settings (every option, its default, its validation), the
flags `serve`, `mutate` and `doctor` share (shared.py), the flags only `serve` has (serving.py),
Go-style values (values.py) and Go's `-flag` syntax (gostyle.py). What the commands share
imports nothing from serving.py."""

"""samconfig.toml read by SAM CLI's own code, checked against template.yaml.

Run with the SAM virtualenv's Python (`make template-lint` does). It fails when
samconfig.toml does not load, when `sam deploy` would not get a stack name, the IAM
capability or an artefact bucket without --guided, or when its parameter_overrides,
parsed by the parser `sam deploy` uses, differ from the template's parameters and their
defaults (a parameter missing, one the template does not have, or another value).
"""

import sys
from pathlib import Path

import click
from samcli.cli.types import CfnParameterOverridesType
from samcli.lib.config.samconfig import SamConfig
from samcli.yamlhelper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    problems = []
    config = SamConfig(str(ROOT), "samconfig.toml")
    if not config.exists():
        print("samconfig.toml: missing", file=sys.stderr)
        return 1
    deploy = config.get_all(["deploy"], "parameters")
    for key, want in [("stack_name", None), ("capabilities", "CAPABILITY_IAM"), ("resolve_s3", True)]:
        got = deploy.get(key)
        if got is None or (want is not None and got != want):
            problems.append(f"deploy {key}: {got!r}, expected {want if want is not None else 'a value'!r}")

    ctx = click.Context(click.Command("deploy"))
    overrides = CfnParameterOverridesType().convert(deploy.get("parameter_overrides"), None, ctx)

    template = yaml_parse((ROOT / "template.yaml").read_text())
    defaults = {
        name: "" if spec.get("Default") is None else str(spec["Default"])
        for name, spec in template["Parameters"].items()
    }
    # SAM's parser strips the quotes: `SecretArns=""` is the empty value, as the template's
    # default (`SecretArns=` alone is refused by `sam deploy`).
    got = dict(overrides)
    for name in sorted(set(defaults) | set(got)):
        if name not in got:
            problems.append(f"{name}: in template.yaml, missing from samconfig.toml")
        elif name not in defaults:
            problems.append(f"{name}: in samconfig.toml, not a parameter of template.yaml")
        elif got[name] != defaults[name]:
            problems.append(f"{name}: samconfig.toml has {got[name]!r}, the template's default is {defaults[name]!r}")
    for p in problems:
        print(f"samconfig.toml: {p}", file=sys.stderr)
    if not problems:
        print(f"samconfig.toml: {len(got)} parameters, each at the template's default")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

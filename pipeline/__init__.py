"""What a user drives: the CLI (commands/), configs, and one subpackage per concept:
world/, semantics/, photos/, run/."""

__version__ = "0.1.0"

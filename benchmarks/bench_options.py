"""The command line of a benchmark script whose options are plain numbers and paths: each script
states its options once, as keyword defaults, instead of an ``add_argument`` line per option."""

import argparse


def benchmark_parser(doc: str, **defaults) -> argparse.ArgumentParser:
    """A parser showing ``doc`` (the script's docstring, line breaks kept) as its help, with a
    ``--name`` option per keyword (``num_workers`` -> ``--num-workers``) that parses values as the
    type of its int, float or str default."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    return parser

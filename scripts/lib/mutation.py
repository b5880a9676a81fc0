"""Shared by scripts/mutants.py and scripts/storage-mutants.py: puts each
mutation into the tree in turn, runs its test command, and restores the
file whatever happens."""


def each_mutant(root, mutations, wanted, run):
    """For each of `mutations` (name, file, text to replace, replacement, test
    command) whose name contains one of `wanted` (every one if `wanted` is
    empty): replaces the first occurrence of the text in `root / file`, calls
    `run(test)`, restores the file, and yields (name, what `run` returned).
    A mutation whose text is no longer in its file is reported as SKIPPED
    here and yielded with None (the caller counts it as a failure)."""
    for name, file, old, new, test in mutations:
        if wanted and not any(w in name for w in wanted):
            continue
        path = root / file
        original = path.read_text()
        if old not in original:
            print(f"SKIPPED  {name}: the code it mutates has changed ({file})", flush=True)
            yield name, None
            continue
        try:
            path.write_text(original.replace(old, new, 1))
            result = run(test)
        finally:
            path.write_text(original)
        yield name, result

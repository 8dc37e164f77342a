"""The sections of `make bench` (python -m bench): each module listed in
bench/__main__.py MODULES has `async def run(kafka, work, quick) -> list[Figure]`;
the others here are parts of a section."""

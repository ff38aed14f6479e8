"""A module nothing imports: test_parallel preloads it into the worker server and checks
that the workers had it before their first job."""

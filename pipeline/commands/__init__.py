"""One module per CLI verb; each exposes `main(argv) -> int` and is imported lazily."""

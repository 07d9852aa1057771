"""One module per CLI verb: parse the arguments, call the library, print; imported lazily."""

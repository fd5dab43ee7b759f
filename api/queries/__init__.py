"""The API's query modules: the one place each number is computed."""

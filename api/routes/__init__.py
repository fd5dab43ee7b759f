"""One module per API resource, each with its SQL beside the function that runs it."""

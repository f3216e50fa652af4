"""The use cases the CLI, the HTTP API and the site agents share: typed inputs, typed results.

One module per use case. An adapter parses its input, calls one use case and renders the
result; no adapter holds SQL or a business rule, so the API cannot drift from the CLI.
"""

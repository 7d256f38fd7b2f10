pip install ".[docs]" && mkdocs build --strict

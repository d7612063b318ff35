"""Built-in scraper plugins: each a small module using only the scraper contract."""

"""Alpaca venue adapters: market data (stocks) and, alongside, trading."""

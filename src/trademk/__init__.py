"""Trademk: an autonomous trading platform for U.S. stocks and the top cryptocurrencies."""

__version__ = "0.1.0"

"""The demo, apart from the product's services: its data (``data``), the set-up
(``setup.seed_demo``), the history it plays through the product (``history``) and the
synthetic upstream AI (``simulation``) that both the seed and ``manage.py simulate`` use.
"""

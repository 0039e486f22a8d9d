"""COLLECT: read a registry's series through the backend, run custom collectors, build families.

``read`` does one backend read per scrape; ``custom`` runs custom collectors
(and counts their failures); ``build`` turns series into samples. The result
goes to the encoders of ``apytheus._expose``.
"""

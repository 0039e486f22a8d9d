"""EXPOSE: render families (``formats``, ``render``), negotiate, and serve or push them.

``render`` and ``negotiate`` are shared by every server: the ASGI app
(``asgi``), the WSGI app and the thread server (``wsgi``), the async server
(``server``), the Pushgateway calls (``push``) and ``textfile``.
"""

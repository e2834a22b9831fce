"""Dead letters after they are written: listed, replayed onto their destination's queue, swept.

``table.py`` is the spool's ``dead_letters`` table (SQL run under the spool's lock); ``memory.py``
the same for memory-only lanes; ``sweep.py`` the background retention sweep.
"""

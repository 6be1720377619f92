"""Real-time humidity analytics for medical imaging devices.

Pure domain modules (no Faust imports): ``settings``, ``readings``,
``aggregate``, ``summary``, ``simulation``.
Faust wiring: ``topics``, ``agents``, ``publisher``, ``commands``.
"""

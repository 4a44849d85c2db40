"""Modules that exist only under PYNQ's names (``pynq.ps``, ``pynq.pl_server``, ...).

With the alias (``fpyga.install_pynq_alias()``), ``import pynq.<name>`` gives
``fpyga.pynq_compat.<name>`` when it exists here, else ``fpyga.<name>`` (``pynq.overlay``,
``pynq.buffer``, ``pynq.mmio``, ``pynq.pmbus``): one module object per name, so classes are the
same objects under both names.
"""

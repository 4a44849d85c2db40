"""Dictionaries that print as PYNQ 3.0.1's ``ReprDict`` does (a JSON tree in Jupyter)."""

import json

__all__ = ["ReprDict"]


class ReprDict(dict):
    """A ``dict`` shown by Jupyter as a collapsible JSON tree, as PYNQ shows ``ip_dict``.

    Nested plain dictionaries are converted once, on construction, so that
    ``ol.ip_dict["vadd_1"]["state"] = x`` changes the entry itself (PYNQ wraps a copy on every
    lookup, which loses such writes).

    Parameters
    ----------
    rootname : str
        The label of the tree's root (``"ip_dict"``).
    expanded : bool
        Whether Jupyter shows the tree expanded.
    """

    def __init__(self, *args, rootname="root", expanded=False, **kwargs):
        super().__init__(*args, **kwargs)
        self._rootname = rootname
        self._expanded = expanded
        for key, value in dict.items(self):
            if type(value) is dict:
                dict.__setitem__(self, key, ReprDict(value, rootname=str(key), expanded=expanded))

    def __setitem__(self, key, value):
        if type(value) is dict:
            value = ReprDict(value, rootname=str(key), expanded=self._expanded)
        super().__setitem__(key, value)

    def _repr_json_(self):
        # Values JSON cannot hold (a Device, a driver class) appear as their repr, as in PYNQ.
        return json.loads(json.dumps(self, default=repr)), {"expanded": self._expanded,
                                                             "root": self._rootname}

    def __reduce__(self):
        return (ReprDict, (dict(self),), {"_rootname": self._rootname,
                                          "_expanded": self._expanded})

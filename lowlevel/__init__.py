"""Leaf of the import graph: how hot-path kernels are compiled and the numba L2 book they share.

Every stage may import this package; it imports nothing of the project.
"""

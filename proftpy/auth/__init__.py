"""proftpy.auth"""

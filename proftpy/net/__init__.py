"""proftpy.net"""

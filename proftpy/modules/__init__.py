"""proftpy.modules"""

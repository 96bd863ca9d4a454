"""proftpy.tools"""

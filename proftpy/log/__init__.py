"""proftpy.log"""

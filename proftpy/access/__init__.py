"""proftpy.access"""

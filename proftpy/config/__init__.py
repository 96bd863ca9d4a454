"""proftpy.config"""

"""svchunt.outputs"""

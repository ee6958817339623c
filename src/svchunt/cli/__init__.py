"""svchunt.cli"""

"""svchunt.rules"""

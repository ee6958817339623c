"""svchunt.normalise"""

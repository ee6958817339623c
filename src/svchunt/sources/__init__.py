"""svchunt.sources"""

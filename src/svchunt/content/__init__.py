"""svchunt.content"""

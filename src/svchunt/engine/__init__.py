"""svchunt.engine"""

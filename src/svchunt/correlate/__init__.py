"""svchunt.correlate"""
